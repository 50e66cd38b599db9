"""Names of every channel variable and AMI UserEvent shared between the dialplan and the router.

One place, so the dialplan (``asterisk/extensions.conf``), the router and the test tools cannot drift apart.
A ``__`` prefix makes Asterisk copy the variable to every channel the call creates — the KCC leg included.
"""

from __future__ import annotations

# The router's FastAGI URL: a dialplan global; a channel variable of the same name shadows it for one call.
AGI_URL = "FOURTEEN_AGI_URL"
# Set by the dialplan before the AGI call.
DIALLED = "FOURTEEN_DIALLED"
# Set by the router once it has taken responsibility for the call; unset means: dialplan, fall back.
DONE = "FOURTEEN_DONE"
# Context for the KCC leg (inherited), also sent as SIP headers by the pre-dial handler.
MUNICIPALITY = "__FOURTEEN_MUNICIPALITY"
UTTERANCE = "__FOURTEEN_UTTERANCE"
ROUTE = "__FOURTEEN_ROUTE"
# The language the caller is served in (the dialplan's prompt Gosub uses it too).
LANGUAGE = "FOURTEEN_LANGUAGE"
# Asterisk's own.
DIALSTATUS = "DIALSTATUS"

# AMI UserEvents the router emits from the call's channel (same Linkedid as the call). Any of them may carry
# the marks ``Stage: greeting|language|menu|speech|confirm|announce|transfer`` (the call entered that stage)
# and ``Listen: language|menu|speech|confirm`` (input is accepted from now on); FourteenStage and
# FourteenListen exist only for marks that no other event carried before the router waited on the caller.
EV_STAGE = "FourteenStage"  # the marks alone
EV_LISTEN = "FourteenListen"  # the Listen mark alone
EV_PROMPT = "FourteenPrompt"  # Prompt: <file name>
EV_DECISION = "FourteenDecision"  # Decision, Municipality, Utterance, BargeIn, DecisionSeconds
EV_DIVERT = "FourteenDivert"  # Destination, Municipality, Route
MARK_STAGE = "Stage"
MARK_LISTEN = "Listen"

# SIP headers the KCC receives (added by the dialplan's pre-dial handler on PJSIP legs).
SIP_HEADERS = {
    "X-Fourteen-Dialled": DIALLED,
    "X-Fourteen-Municipality": MUNICIPALITY.lstrip("_"),
    "X-Fourteen-Utterance": UTTERANCE.lstrip("_"),
    "X-Fourteen-Route": ROUTE.lstrip("_"),
}
