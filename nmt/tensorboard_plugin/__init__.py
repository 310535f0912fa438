"""The Attention tab: a TensorBoard plugin exploring what training and nmt-translate logged.

``records`` stores the data, ``plugin`` serves it with the page in ``static/``, ``live``
translates typed text with a run's checkpoint.
"""
