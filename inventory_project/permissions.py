"""Guards that many API views share, declared in a view's ``permission_classes``."""

from rest_framework import exceptions, permissions


class ActsOnlyForSelf(permissions.BasePermission):
    """Identity comes from authentication; a write whose body names another user
    (``"userId"``) is refused, 403, and a malformed ``userId`` is a 400.

    A write's body must be a JSON object (400 otherwise), so a view behind this guard
    may read ``request.data`` as a dict. Reads pass: they carry no body to act with.
    List it after IsAuthenticated: it compares with the authenticated user's id.
    """

    message = "You can only act for yourself."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        data = request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        if "userId" not in data:
            return True
        user_id = data["userId"]
        text = (
            "" if isinstance(user_id, bool) or not isinstance(user_id, (int, str)) else str(user_id)
        )
        # ASCII digits and short: int() refuses other Unicode digits ("²") and strings of
        # over 4300 digits, which would otherwise surface as a 500.
        if not (text.isascii() and text.isdigit() and len(text) <= 20):
            raise exceptions.ValidationError({"userId": ["Must be your own user id."]})
        return int(text) == request.user.pk
