"""`python -m gantools` (also what torchrun launches)."""
from gantools.cli import main

if __name__ == "__main__":
    main()
