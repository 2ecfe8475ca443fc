"""The shop's sign-up and log-in forms: Django's, worded and marked up for people
and for password managers (labels without colons, autocomplete hints, one line of
password rules, each error under the field it is about)."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from inventory_project import throttles

USERNAME_ATTRS = {
    "autocomplete": "username",
    "autocapitalize": "none",
    "spellcheck": "false",
    "autofocus": True,
}


def password_rules() -> str:
    """The configured validators in one short sentence, instead of Django's list."""
    rules = []
    for validator in password_validation.get_default_password_validators():
        name = type(validator).__name__
        if name == "MinimumLengthValidator":
            rules.insert(0, f"at least {validator.min_length} characters")
        elif name == "NumericPasswordValidator":
            rules.append("not only digits")
        elif name == "CommonPasswordValidator":
            rules.append("not a common password")
        elif name == "UserAttributeSimilarityValidator":
            rules.append("not like your username")
    return (", ".join(rules).capitalize() + ".") if rules else ""


class SignUpForm(UserCreationForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(USERNAME_ATTRS)
        self.fields["username"].help_text = "Letters, digits and @ . + - _ only."
        self.fields["password1"].help_text = password_rules()
        self.fields["password2"].label = "Repeat password"
        self.fields["password2"].help_text = ""

    def validate_password_for_user(self, user, password_field_name="password1"):
        # Django files a weak password under the confirmation; the rules are about
        # the password itself, so the error goes under it.
        super().validate_password_for_user(user, password_field_name="password1")


class LogInForm(AuthenticationForm):
    """Django's already marks the password ``current-password``."""

    def __init__(self, request=None, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update(USERNAME_ATTRS)


class AdminLogInForm(AdminAuthenticationForm):
    """The admin's log-in, on the shop's log-in counters (inventory_project.throttles):
    a guesser gains nothing by moving to /admin/. Refused as a form error, the way the
    admin shows every other."""

    def clean(self):
        wait = throttles.refusal(
            self.request, None, [throttles.LoginRateThrottle, throttles.LoginFailureThrottle]
        )
        if wait is not None:
            raise ValidationError(
                f"Too many log-in attempts. Try again in {wait} seconds.", code="throttled"
            )
        try:
            return super().clean()
        except ValidationError:
            throttles.record_login_failure(
                self.request, throttles.submitted_username(self.request.POST)
            )
            raise
