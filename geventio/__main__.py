from geventio._cli import main

raise SystemExit(main())
