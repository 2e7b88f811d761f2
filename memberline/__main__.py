import sys

from memberline.cli import main

sys.exit(main())
