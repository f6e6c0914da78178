from stackspot_tui.cli import main

raise SystemExit(main())
