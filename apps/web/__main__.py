"""`python -m apps.web` is `python -m apps.web.serve`."""

import sys

from apps.web.serve import main

if __name__ == "__main__":
    sys.exit(main())
