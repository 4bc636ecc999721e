from django import forms

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI' or 'laptop'.")
    expires_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False, initial="90", label="Expires after"
    )


class SwitchOrganizationForm(forms.Form):
    organization = forms.IntegerField()
    next = forms.CharField(required=False)
