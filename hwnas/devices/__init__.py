"""Devices: profiles (YAML -> DeviceProfile), runners (local, adb, agent), energy sensors, model workers."""
