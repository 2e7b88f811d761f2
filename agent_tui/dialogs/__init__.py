"""Modal dialogs: each a ``ModalScreen[T]`` that returns its result through ``dismiss``."""
