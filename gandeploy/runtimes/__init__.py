"""One runtime per file behind one small interface (base.py): torch, onnxruntime, tensorrt, triton."""
