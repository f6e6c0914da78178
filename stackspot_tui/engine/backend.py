"""The app's one door: turns, stored history, exports and quick-command lists.

Screens hold a `Backend` and nothing behind it: no client, no store, no simulator. What it
is built on (StackSpot or the simulator, this history or another) is decided by whoever
builds it (`runtime.build_backend`), so the app could be pointed elsewhere without
touching a screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .. import export
from ..api import StackSpotError, result_to_text
from ..api.names import valid_agent_id
from ..store import SearchHit
from ..store.models import Conversation, Turn
from .service import ConversationService, EventCallback

RECENT_SLUGS_FROM = 200  # conversations looked at for recently used quick commands


def answer_text(turn: Turn) -> str:
    """A turn's answer as text (StackSpot may answer a string or a JSON value)."""
    return result_to_text(turn.result)


class Backend:
    def __init__(self, service: ConversationService, *, catalogue: Mapping[str, str] | None = None) -> None:
        self._service = service
        self._store = service.store
        self._catalogue = dict(catalogue or {})  # slug -> what it does (the demo's quick commands)

    # -- turns ------------------------------------------------------------------------------

    def new_conversation(self, slug: str = "", *, agent_id: str | None = None) -> Conversation:
        """A conversation with a quick command (`slug`) or with an agent (`agent_id`)."""
        return self._service.new_conversation(slug, agent_id=agent_id)

    async def send(
        self, conv_id: str, prompt: str, *, slug: str | None = None, on_event: EventCallback | None = None
    ) -> Turn:
        return await self._service.send(conv_id, prompt, slug=slug, on_event=on_event)

    async def reattach(self, conv_id: str, seq: int, *, on_event: EventCallback | None = None) -> Turn:
        return await self._service.reattach(conv_id, seq, on_event=on_event)

    def detach(self, conv_id: str, seq: int) -> Turn:
        """The user stopped watching a turn: it stays fetchable, on demand."""
        return self._service.detach(conv_id, seq)

    def fetchable_turns(self, *, include_stopped: bool = False) -> list[tuple[Conversation, Turn]]:
        """Turns left running (and, with ``include_stopped``, those the user stopped watching)."""
        return self._service.fetchable_turns(include_stopped=include_stopped)

    # -- history ----------------------------------------------------------------------------

    def resolve_id(self, text: str) -> str:
        """A local conversation id from an id or a unique prefix."""
        return self._store.resolve_id(text)

    def conversation(self, conv_id: str) -> Conversation:
        return self._store.get_conversation(conv_id)

    def conversations(
        self, *, archived: bool | None = False, limit: int | None = None, matching: str = ""
    ) -> list[Conversation]:
        """Newest activity first; ``matching``: only those whose title, quick command or agent holds it."""
        return self._store.list_conversations(archived=archived, limit=limit, matching=matching)

    def count_conversations(self, *, archived: bool | None = False, matching: str = "") -> int:
        return self._store.count_conversations(archived=archived, matching=matching)

    def latest_conversation(self, slug: str | None = None, *, agent_id: str | None = None) -> Conversation | None:
        return self._store.latest_conversation(slug, agent_id=agent_id)

    def turns(self, conv_id: str, *, start: int = 0, limit: int | None = None) -> list[Turn]:
        return self._store.turns(conv_id, start=start, limit=limit)

    def turn(self, conv_id: str, seq: int) -> Turn:
        return self._store.get_turn(conv_id, seq)

    def search(self, text: str, *, limit: int = 100, as_you_type: bool = False) -> list[SearchHit]:
        """Turns whose prompt or answer holds the words, best and newest first, each with a snippet and
        the turn to open. ``as_you_type``: the last word is still being typed (a prefix)."""
        return self._store.search(text, limit=limit, prefix_last=as_you_type)

    def rename(self, conv_id: str, title: str) -> Conversation:
        return self._store.update_conversation(conv_id, title=title)

    def set_archived(self, conv_id: str, archived: bool) -> Conversation:
        return self._store.update_conversation(conv_id, archived=archived)

    def set_slug(self, conv_id: str, slug: str) -> Conversation:
        return self._store.update_conversation(conv_id, slug=slug)

    def delete_conversation(self, conv_id: str) -> None:
        self._store.delete_conversation(conv_id)

    def delete_turn(self, conv_id: str, seq: int) -> None:
        self._store.delete_turn(conv_id, seq)

    # -- exports ----------------------------------------------------------------------------

    @property
    def export_formats(self) -> list[export.ExportFormat]:
        return list(export.FORMATS.values())

    def export_path(self, conv_id: str, fmt: str, directory: Path) -> Path:
        """Where `export_to` would write in that directory: a name no file has yet."""
        return export.free_path(directory, conv_id, fmt)

    def export_to(self, conv_id: str, fmt: str, path: Path) -> Path:
        """Write a conversation to exactly this file (its directory is made), never over one that
        exists, as its turns are read; the path written. Raises ExportWriteError with a one-line reason."""
        export.make_directory(path.parent)
        conversation = self.conversation(conv_id)
        pieces = export.chunks(fmt, conversation, self._store.iter_turns(conversation))
        export.write_new_file(path, pieces, force=False)
        return path

    # -- quick commands ---------------------------------------------------------------------

    def quick_commands(self) -> list[tuple[str, str]]:
        """(slug, note) pairs to pick from: recently used slugs first, then the known catalogue."""
        known: dict[str, str] = {}
        for conversation in self.conversations(archived=None, limit=RECENT_SLUGS_FROM):
            known.setdefault(conversation.slug, "recent")
        for slug, about in self._catalogue.items():
            known.setdefault(slug, about)
        known.pop("", None)  # agent conversations have no slug
        return list(known.items())

    # -- agents -----------------------------------------------------------------------------

    @staticmethod
    def is_agent_id(text: str) -> bool:
        return valid_agent_id(text)

    def recent_agents(self) -> list[tuple[str, str]]:
        """(agent id, note) of agents chatted with lately, newest first."""
        recent: dict[str, str] = {}
        for conversation in self.conversations(archived=None, limit=RECENT_SLUGS_FROM):
            if conversation.agent_id:
                recent.setdefault(conversation.agent_id, "recent")
        return list(recent.items())

    async def list_agents(self) -> tuple[list[tuple[str, str]], str | None]:
        """(agent id, name) pairs from StackSpot's agent list, and why it failed (None: it answered).

        The listing is an optional service: a failure is reported, never raised."""
        try:
            agents = await self._service.agents.list_agents()
        except StackSpotError as exc:
            return [], str(exc)
        return [(agent.id, agent.name or agent.description or "") for agent in agents], None
