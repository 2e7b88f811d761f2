"""PBX simulator: speaks Asterisk 22 AMI (and FastAGI as a client) from a Scenario.

See :mod:`cti.pbxsim.sim` for the Python API and :mod:`cti.pbxsim.call_actors` /
:mod:`cti.pbxsim.originate` for the dialplan conventions.
"""

from cti.pbxsim.originate import OriginateRequest
from cti.pbxsim.scenario import (
    AgentSpec,
    Caller,
    Dist,
    InboundSpec,
    NumberOverride,
    OutboundSpec,
    QueueSpec,
    Scenario,
    ScenarioError,
    SurveySpec,
    load_scenario,
    scenario_from_dict,
)
from cti.pbxsim.sim import CallHandle, PbxSimulator, SimStats
from cti.pbxsim.wire import AmiMessage

__all__ = [
    "AgentSpec",
    "AmiMessage",
    "CallHandle",
    "Caller",
    "Dist",
    "InboundSpec",
    "NumberOverride",
    "OriginateRequest",
    "OutboundSpec",
    "PbxSimulator",
    "QueueSpec",
    "Scenario",
    "ScenarioError",
    "SimStats",
    "SurveySpec",
    "load_scenario",
    "scenario_from_dict",
]
