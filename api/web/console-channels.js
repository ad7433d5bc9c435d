// Channels as the agent sees them: their names, and the composer's meter of a draft's length, counted as
// copilot/channels.py counts it (code points per message; SMS in GSM-7 or UCS-2 segments).

import { $, state } from "/app/console-state.js";

const CHANNEL_NAMES = {
  sms: "SMS", whatsapp: "WhatsApp", messenger: "Messenger", apple_messages: "Apple Messages",
  webchat: "Web chat", x_dm: "X DM", app: "In-app", email: "Email",
};
// characters per message, as copilot/channels.py counts them (code points); sms counts segments instead
const CHANNEL_LIMITS = { whatsapp: 4096, messenger: 2000, x_dm: 10000 };
const SMS_MAX_SEGMENTS = 3; // copilot/channels.py SMS_MAX_SEGMENTS_PER_MESSAGE

// GSM 03.38, mirrored from copilot/channels.py: the basic set, and the extension set (two septets each)
const GSM_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
const GSM_EXTENDED = new Set("^{}\\[~]|€\f");

export function smsLength(text) {
  const chars = [...text];
  if (chars.every((c) => GSM_BASIC.has(c) || GSM_EXTENDED.has(c))) {
    const units = chars.reduce((sum, c) => sum + (GSM_EXTENDED.has(c) ? 2 : 1), 0);
    return { encoding: "GSM-7", units, segments: units <= 160 ? 1 : Math.ceil(units / 153) };
  }
  const units = text.length; // UTF-16 code units
  return { encoding: "UCS-2", units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
}

export function channelName(channel) {
  return CHANNEL_NAMES[channel] || channel;
}

export function meterText(channel, text) {
  if (channel === "sms") {
    const sms = smsLength(text);
    const over = sms.segments > SMS_MAX_SEGMENTS;
    const unit = sms.encoding === "GSM-7" ? "characters" : "UTF-16 units";
    return {
      text: `SMS · ${sms.encoding} · ${sms.units} ${unit} · ${sms.segments} segment${sms.segments === 1 ? "" : "s"}`
        + (over ? ` — over ${SMS_MAX_SEGMENTS} segments may arrive late or out of order` : "")
        + (sms.encoding === "UCS-2" && text ? " (a character outside GSM-7 makes segments 70/67)" : ""),
      over,
    };
  }
  const length = [...text].length;
  const limit = CHANNEL_LIMITS[channel];
  if (limit) {
    const over = length > limit;
    return { text: `${channelName(channel)} · ${length} / ${limit}` + (over ? " — over the channel's limit" : ""),
      over };
  }
  return { text: `${channelName(channel)} · ${length} characters, no length limit`, over: false };
}

export function updateMeter() {
  const meter = $("channel-meter");
  if (!state.thread) {
    meter.textContent = "";
    return;
  }
  const { text, over } = meterText(state.thread.channel, $("composer").value);
  meter.textContent = text;
  meter.classList.toggle("over", over);
}
