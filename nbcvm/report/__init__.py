"""nbcvm.report: turning results into tables, CI formats, exports and tracebacks.

This file stays tiny: the CLI reads ``CI_FORMATS`` when it is loaded, and
``nbcvm run`` must not pay for the renderers.
"""

CI_FORMATS = ("json", "junit", "github", "sarif")  # validate-imports --format (report/ci_formats.py)
