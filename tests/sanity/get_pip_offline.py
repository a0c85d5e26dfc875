"""Stand-in for ansible-test's downloaded pip bootstrap script, for machines without internet.

ansible-test creates empty virtual environments for some sanity tests and runs a "get-pip"
script inside them, which it normally downloads from the internet. This one bootstraps pip from
the interpreter's own bundled wheel (ensurepip), then installs the requested packages (for
example ``pip==25.2``) from whatever package index pip is configured to reach.
It receives the same arguments as the real script: pip options and requirement specifiers.
"""

import subprocess
import sys


def main():
    subprocess.check_call(
        [sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL
    )
    wanted = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q"] + wanted)


if __name__ == "__main__":
    main()
