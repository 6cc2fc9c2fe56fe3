import sys

from semstyle.cli.main import main

sys.exit(main())
