@_exported import HTTPWire
