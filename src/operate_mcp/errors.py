"""Errors a user can act on; raised once and turned into an MCP tool error at the edge."""


class OperateError(Exception):
    """Base of every error whose message is meant for the person reading it."""


class ConfigError(OperateError):
    """The configuration is wrong; the message says which setting and how to fix it."""


class SessionError(OperateError):
    """A session is missing, expired, in the wrong state or malformed."""


class CommandRejected(OperateError):
    """A proposed command failed the classifier or a policy."""


class AgentError(OperateError):
    """The model loop could not produce a valid proposal."""
