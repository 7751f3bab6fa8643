"""One file per architecture family; each exposes a frozen config, Generator, Discriminator and SPEC."""
