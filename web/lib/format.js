// Number and time formatting for the dashboard.

const money2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function money(value, currency = "") {
  if (value === undefined || value === null || Number.isNaN(value)) return "—";
  const text = money2.format(value);
  return currency ? `${text} ${currency}` : text;
}

export function signedMoney(value) {
  if (value === undefined || value === null || Number.isNaN(value)) return "—";
  return (value > 0 ? "+" : "") + money2.format(value);
}

export function price(value, digits = 5) {
  if (value === undefined || value === null || Number.isNaN(value)) return "—";
  return Number(value).toFixed(digits);
}

export function percent(value, digits = 1) {
  if (value === undefined || value === null || Number.isNaN(value)) return "—";
  return `${(value * 100).toFixed(digits)}%`;
}

/** "3s", "2m 5s", "1h 4m" for a duration in milliseconds. */
export function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function clock(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

/** The number of decimals of a lot step (0.01 -> 2). */
export function stepDecimals(step) {
  const text = String(step);
  return text.includes(".") ? text.split(".")[1].length : 0;
}
