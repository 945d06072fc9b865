"""Start-up without TensorFlow's C++ chatter on machines without a GPU.

`import tensorflow` writes "Could not find cuda drivers", "All log messages before
absl::InitializeLog()" and oneDNN notices straight to the process's stderr before any log
setting applies, so the entry points import it with file descriptor 2 captured and replay every
line that is not such a notice. TFPG_TF_LOGS=1 asks for TensorFlow's logs, unfiltered.
"""
from __future__ import annotations

import os
import sys
import tempfile

import tfpg

NOTICES = ("All log messages before absl::InitializeLog()", "cudart_stub.cc", "cuda_executor.cc", "cuInit",
           "oneDNN custom operations", "computation_placer", "Unable to register cu", "TF-TRT Warning",
           "This TensorFlow binary is optimized", "port.cc:153", "cpu_feature_guard.cc")


def import_tensorflow() -> None:
    """Import TensorFlow (and Keras, TensorFlow Probability) with its start-up notices filtered out of stderr."""
    if "tensorflow" in sys.modules or tfpg.SHOW_TF_LOGS:
        import keras  # noqa: F401
        import tensorflow_probability  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  (imports TensorFlow as its backend)
            import tensorflow  # noqa: F401
            import tensorflow_probability  # noqa: F401  (loads more TF libraries, which print again)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not any(notice in line for notice in NOTICES):
                    sys.stderr.write(line)
