"""The one exception class for a user's mistakes (a missing checkpoint or dataset, a config mismatch, an unknown
name). The command-line apps (`utils.run`) print it as one line and exit with status 2; anything else keeps its
traceback (a bug)."""


class UsageError(ValueError):
  """Bad user input: the message names the bad value and what would be valid, on one line."""
