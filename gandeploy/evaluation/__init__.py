"""How a generator does once it leaves training: ``gandeploy evaluate`` (sample any backend and score it, here),
``parity/`` (every runtime against PyTorch), ``bench/`` (speed) and ``studies/`` (diagnose, the mode table)."""
