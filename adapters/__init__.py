"""Transports at the edge: turn a folder, an SFTP server or a request into bytes and back."""
