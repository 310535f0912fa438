"""nmt: RNN encoder-decoder translation with inspectable attention."""

import time

__version__ = "0.1.0"

# When the process started (close enough: nmt is imported first by every console script);
# train.max_time budgets count from here, start-up and data loading included.
STARTED_AT = time.monotonic()
