"""Studies over trained runs: the training diagnosis (``gandeploy diagnose``) and the mode table."""
