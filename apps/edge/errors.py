"""The one error type of the edge app: a message for the user, printed as `error: ...` (exit code 2)."""


class AppError(ValueError):
    """Bad input to the edge app (model file, tokenizer, prompt, options); its message is one line."""
