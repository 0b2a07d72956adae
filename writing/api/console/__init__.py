"""The web console's files (``static/``), served by ``writing.api.routes.console``; no build step.

``static/`` holds ``index.html`` (the page, never cached), ``console.css`` and native ES modules:
``console.js`` the entry (admin key form, hash router), ``api.js`` (the API client, int64-safe JSON),
``dom.js`` (DOM building, status area), ``format.js``, ``charts.js`` (SVG charts and their scales) and
``pages/*.js`` (one module per page). They are served from one folder named by a hash of them all and
cached for a year. ``package.json`` only tells node (``node --test tests/js/``) that they are modules.
"""
