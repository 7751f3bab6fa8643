"""``python -m gandeploy.cli`` (used by ``torchrun ... -m gandeploy.cli train ...``)."""

from gandeploy.cli import entry

if __name__ == "__main__":
    entry()
