import json

from django.core.management.base import BaseCommand, CommandError

from keys.models import ApiKey
from routing.explain import as_dict, explanation_lines
from routing.explain_inputs import explain_for
from teams.models import Team


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = (
        "Explain what the gateway would do with a model name for a key or a team, without calling the provider: "
        "alias, allowed or not and why, token caps, deployments in order with their health, path and fallbacks."
    )

    def add_arguments(self, parser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--key", help="The API key's name.")
        who.add_argument("--team", help="A team's name (its model list, as for a key of that team with no list).")
        parser.add_argument("--model", required=True, help="The model name a caller sends (a model or an alias).")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args, **options) -> None:
        api_key = team = None
        if options["key"] is not None:
            api_key = ApiKey.objects.select_related("team").filter(name=options["key"]).first()
            if api_key is None:
                raise CommandError(f"No API key is named '{options['key']}'.")
        else:
            team = Team.objects.filter(name=options["team"]).first()
            if team is None:
                raise CommandError(f"No team is named '{options['team']}'.")
        explained = explain_for(model_name=options["model"], api_key=api_key, team=team)
        if options["json"]:
            data = as_dict(explained.explanation, provider_settings=True)
            data["health_note"] = explained.health_note
            self.stdout.write(json.dumps(data, indent=2))
            return
        who = f"key '{api_key.name}'" if api_key is not None else f"team '{team.name}'"
        if api_key is not None and api_key.team is not None:
            who += f" (team '{api_key.team.name}')"
        self.stdout.write(f"Route for {who}")
        lines = explanation_lines(explained.explanation, now=explained.now, health_note=explained.health_note)
        self.stdout.write("\n".join(lines))
