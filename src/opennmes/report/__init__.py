"""Reports and figures: program plots, session and progress reports."""

__all__: list[str] = []
