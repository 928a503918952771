"""Why a file could not be ingested. Each message names the reason in words a user can act on."""


class IngestError(Exception):
    """A file cannot be ingested; ``str(exc)`` is the reason (the file name is added by the caller)."""


class UnsupportedFormat(IngestError):
    pass


class EmptyDocument(IngestError):
    pass


class UnreadableDocument(IngestError):
    pass


class MissingTool(IngestError):
    """A format needs a program that is not installed; the message names the Debian package."""
