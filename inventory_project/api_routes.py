"""How the API's routes are built: the id converter and the router that each app's API
URL module (accounts/api_urls.py, shop/api_urls.py, reservations/api_urls.py) uses.

The public paths and route names predate the routers (clients, the page script,
shop/views.py and inventory_project/metrics.py know them), so the router makes
exactly those: no trailing slash, ids through the id converter, and names without
DRF's ``-list``/``-detail`` suffixes.
"""

from django.urls import register_converter

from rest_framework.routers import DynamicRoute, Route, SimpleRouter


class IdConverter:
    """A database id: positive and within bigint, so no lookup can overflow."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


# Registered on import: path() resolves a converter when the route is built, and every
# module that builds <id:...> routes imports this one first.
register_converter(IdConverter, "id")


class ApiRouter(SimpleRouter):
    """DRF's SimpleRouter, shaped as the API always was.

    A viewset registered with basename "drop" gets the routes "drops" (list, create)
    and "drop" (retrieve); an ``@action`` is named by its ``url_name`` alone
    ("reserve", "cancel"). Ids: a viewset sets ``lookup_value_converter = "id"``, an
    action's ``url_path`` writes ``<id:...>`` itself. Under the prefix "", a
    ``detail=False`` action's url_path is the whole path ("reserve/<id:drop_id>").
    The names share the "api" namespace, so no two actions may share a url_name.
    """

    routes = [
        Route(
            url=r"^{prefix}{trailing_slash}$",
            mapping={"get": "list", "post": "create"},
            name="{basename}s",
            detail=False,
            initkwargs={"suffix": "List"},
        ),
        DynamicRoute(
            url=r"^{prefix}/{url_path}{trailing_slash}$",
            name="{url_name}",
            detail=False,
            initkwargs={},
        ),
        Route(
            url=r"^{prefix}/{lookup}{trailing_slash}$",
            mapping={
                "get": "retrieve",
                "put": "update",
                "patch": "partial_update",
                "delete": "destroy",
            },
            name="{basename}",
            detail=True,
            initkwargs={"suffix": "Instance"},
        ),
        DynamicRoute(
            url=r"^{prefix}/{lookup}/{url_path}{trailing_slash}$",
            name="{url_name}",
            detail=True,
            initkwargs={},
        ),
    ]

    def __init__(self):
        # Path syntax, not regexes, so routes use the id converter (and its int).
        super().__init__(trailing_slash=False, use_regex_path=False)
