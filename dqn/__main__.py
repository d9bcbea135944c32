import sys

from dqn.cli.main import main

sys.exit(main())
