// The kill switch: a confirmed stop button (admin only), a banner while stopped, and resume.

import { setText } from "../lib/dom.js";
import { age, clock } from "../lib/format.js";
import { describe } from "./positions.js";

export class EmergencyControls {
  /**
   * @param {{button, dialog, banner, resume}} nodes
   * @param {(op: object) => Promise} send
   */
  constructor(nodes, send) {
    this.nodes = nodes;
    this.send = send;
    this.state = { stopped: false };
    this.admin = false;
    const { button, dialog, resume } = nodes;
    const form = dialog.querySelector("form");
    this.dialogMessage = dialog.querySelector("[data-message]");
    this.bannerText = nodes.banner.querySelector("[data-text]");
    this.bannerMessage = nodes.banner.querySelector("[data-message]");
    button.addEventListener("click", () => {
      setText(this.dialogMessage, "");
      dialog.showModal();
    });
    dialog.querySelector("[data-cancel]").addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const reason = form.elements.namedItem("reason").value.trim() || "dashboard";
      const closePositions = form.elements.namedItem("close_positions").checked;
      setText(this.dialogMessage, "stopping…");
      this.send({ op: "emergency_stop", reason, close_positions: closePositions }).then(
        (reply) => {
          dialog.close();
          this.set({ stopped: true, reason, by: reply.data?.by, since: reply.data?.since });
        },
        (err) => setText(this.dialogMessage, describe(err)),
      );
    });
    resume.addEventListener("click", () => {
      resume.disabled = true;
      setText(this.bannerMessage, "resuming…");
      this.send({ op: "resume" }).then(
        () => {
          setText(this.bannerMessage, "");
          this.set({ stopped: false });
        },
        (err) => setText(this.bannerMessage, describe(err)),
      ).finally(() => {
        resume.disabled = false;
      });
    });
  }

  setAdmin(admin) {
    this.admin = admin;
    this.render();
  }

  set(state) {
    this.state = { ...state };
    this.render();
  }

  render(now = Date.now()) {
    const { button, banner, resume } = this.nodes;
    const { stopped, reason, by, since } = this.state;
    banner.hidden = !stopped;
    document.body.classList.toggle("emergency", Boolean(stopped));
    button.hidden = !this.admin || Boolean(stopped);
    resume.hidden = !this.admin;
    if (stopped) {
      const parts = ["EMERGENCY STOP — all new trades are refused"];
      if (reason) parts.push(`reason: ${reason}`);
      if (by) parts.push(`by ${by}`);
      if (since) parts.push(`since ${clock(since)} (${age(now - since)} ago)`);
      setText(this.bannerText, parts.join(" · "));
    }
  }
}
