"""``python -m gandeploy.cli`` (used by ``torchrun ... -m gandeploy.cli train ...``)."""

from gandeploy.cli import main

if __name__ == "__main__":
    main(prog_name="gandeploy")
