// meteor.mjs: the Meteor browser client as an ES module.
//
//   import { MeteorClient } from "http://push.example.com:4670/meteor.mjs";
//   const client = new MeteorClient();        // the server this file came from
//   client.on("status", s => console.log(s.state, s.transport));
//   for await (const msg of client.subscribe("demo", { last: 10 })) {
//     console.log(msg.id, msg.text);
//   }
//
// The engine lives in meteor.js, the classic script, so that the global
// Meteor and this module share one implementation; this module loads it
// and exports its class. Bundled into a site's own code (the npm package
// meteor-push-client), the module has no URL of its own on the Meteor
// server: pass the server as options.url. Types: meteor.d.ts. Source:
// web/src/module.js, built by `npm run build` in web/.

// src/module.js
import "./meteor.js";
var Meteor = globalThis.Meteor;
var base = null;
try {
  base = new URL(".", import.meta.url).origin;
} catch (e) {
}
var MeteorClient = class extends Meteor.Client {
  constructor(options = {}) {
    super(base && base !== "null" ? { url: base, ...options } : options);
  }
};
var module_default = MeteorClient;
export {
  Meteor,
  MeteorClient,
  module_default as default
};
