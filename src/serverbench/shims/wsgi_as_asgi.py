"""An ASGI app made from the WSGI app named by $SERVERBENCH_WSGI_APP, through a2wsgi.

ASGI servers import `serverbench.shims.wsgi_as_asgi:app`; every worker process they spawn
imports it again and reads the same environment variable.
"""

import os

from a2wsgi import WSGIMiddleware

from serverbench.shims.loader import load_object

app = WSGIMiddleware(load_object(os.environ["SERVERBENCH_WSGI_APP"]))
