"""``python -m loyaltykit``: the same as the ``loyaltykit`` command."""

from loyaltykit.cli import main

if __name__ == "__main__":
    main()
