"""Static files storage for production."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed files; the page scripts' ``import "./x.js"`` statements are
    rewritten to the hashed names too, so a browser never mixes modules of two deploys
    (each hashed file is cached for good)."""

    support_js_module_import_aggregation = True
