"""``python -m grl.data.synthetic``: see :func:`grl.data.synthetic.cli.main`."""

import sys

from grl.data.synthetic.cli import main

if __name__ == "__main__":
    sys.exit(main())
