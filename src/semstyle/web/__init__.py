"""The web app behind ``semstyle serve``: a Gradio page over one shared, lazily loaded Stylizer.

``forms`` holds the requests, limits and one-line messages, ``engine`` the work (no web framework needed in
either, so they are tested directly);
``app`` builds the page and serves it. Install with ``pip install 'semstyle[web]'``.

Why Gradio: it is this field's convention for model demos, and it works fully offline here: its
frontend and fonts ship in the wheel (a page load makes no request beyond localhost), analytics
are switched off (``GRADIO_ANALYTICS_ENABLED=False``), server-side rendering, share links and the
MCP server are not used. Its queue gives the bounded concurrency, ``max_file_size`` the upload
limit (refused in the page before the upload starts), ``gr.Progress`` the progress bar. The
handlers take the raw uploads (``preprocess=False``) and decode them themselves with the pixel
limit, so a bad upload is a one-line message in the page, never a framework error. Gradio 6 pins
``pillow<13``.
"""

from semstyle.web.engine import Engine
from semstyle.web.forms import Limits, Upload, UserError, WebRequest, WebResult, user_message

__all__ = ["Engine", "Limits", "Upload", "UserError", "WebRequest", "WebResult", "user_message"]
