"""A local web app for live what-if scenarios (``coverage15 serve CONFIG``).

:mod:`.engine` holds the run's base state read-only and recomputes a scenario incrementally
(only the edited layer's reach); :mod:`.store` keeps scenarios per browser session and on disk
under strict slug names; :mod:`.server` is the Starlette app that the page in ``_static/``
talks to.
"""
