"""IVR surveys: definitions, the FastAGI and Twilio call paths, scoring, escalation.

Modules (import what you need; nothing heavy is imported here):

- ``definitions`` - TOML survey definitions, strict validation; ``data/satisfaction.toml``
- ``engine`` - the pure state machine both call paths drive
- ``store`` - versioned definitions, responses and answers (``SurveyRecorder``)
- ``escalation`` - low score / callback -> complaint or inquiry + callback task, exactly once
- ``agi`` / ``agi_wire`` - the FastAGI server (panoramisk, hardened reply reading)
- ``twilio_voice`` - TwiML over twisted.web with signature validation
- ``postcall`` - AMI actions moving a member into the survey after the agent hangs up
- ``scoring`` / ``report`` / ``report_html`` / ``charts`` - CSAT, NPS, rates; HTML report
- ``prompts`` - espeak-ng + sox rendering of prompts to 8 kHz WAV
- ``service`` - one call to start it all from the composition root
- ``testing`` - Asterisk's side of a FastAGI dialog, for tests and benchmarks
"""
