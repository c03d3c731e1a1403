"""The one error type of nsml_local.

Its message is a single line that names what is wrong; the CLI prints it as
`nsml: error: <message>` and exits non-zero.
"""


class NSMLError(Exception):
    pass
