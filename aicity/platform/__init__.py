"""The city platform: an NGSI-LD API over the state store, the live city, MQTT devices and the dashboard."""
