"""Export steps named source2target (torch2onnx, onnx2fp16, onnx2trt); pipeline.py composes them."""
