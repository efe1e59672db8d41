// Risk preview for the trade ticket (the same math as the hub's risk engine, docs/risk.md):
// risk = lots x contract size x |entry - SL|, in the quote currency, converted to the
// account currency with current prices.

/**
 * @param {object} p
 * @param {"buy"|"sell"} p.action
 * @param {number} p.lots
 * @param {number|null} p.sl
 * @param {{bid: number, ask: number}|undefined} p.tick  current price of the symbol
 * @param {{contract_size: number, quote_currency: string}} p.spec
 * @param {string} p.currency  account currency
 * @param {(symbol: string) => {bid: number, ask: number}|undefined} p.priceOf
 * @param {string} p.symbol
 * @returns {{entry?: number, risk?: number, problem?: string}}
 */
export function tradeRisk({ action, lots, sl, tick, spec, currency, priceOf, symbol }) {
  if (!spec) return { problem: `no contract spec for ${symbol}` };
  if (!tick) return { problem: `no price for ${symbol} yet` };
  const entry = action === "buy" ? tick.ask : tick.bid;
  if (!(lots > 0)) return { entry, problem: "lots must be > 0" };
  if (sl === null || sl === undefined || Number.isNaN(sl)) {
    return { entry, problem: "SL is required" };
  }
  if (action === "buy" ? sl >= entry : sl <= entry) {
    return { entry, problem: `SL must be ${action === "buy" ? "below" : "above"} ${entry}` };
  }
  const quoteRisk = lots * spec.contract_size * Math.abs(entry - sl);
  const rate = conversion(spec.quote_currency || currency, currency, priceOf);
  if (rate === undefined) {
    return { entry, problem: `no price to convert ${spec.quote_currency} to ${currency}` };
  }
  return { entry, risk: round2(quoteRisk * rate) };
}

/** Multiplier from ``quote`` money to ``account`` money, or undefined without a price. */
export function conversion(quote, account, priceOf) {
  if (quote === account) return 1;
  const direct = priceOf(`${quote}${account}`); // e.g. EURUSD for EUR -> USD
  if (direct) return (direct.bid + direct.ask) / 2;
  const inverse = priceOf(`${account}${quote}`); // e.g. USDJPY for JPY -> USD
  if (inverse) return 2 / (inverse.bid + inverse.ask);
  return undefined;
}

function round2(value) {
  return Math.round(value * 100) / 100;
}
