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
// Meteor and this module share one implementation with no build step; this
// module loads it and exports its class. Types: meteor.d.ts.
import "./meteor.js";

const Meteor = globalThis.Meteor;
const base = new URL(".", import.meta.url).origin;

/** The modern client; its default url is the server this module came from. */
export class MeteorClient extends Meteor.Client {
	constructor(options = {}) {
		super({ url: base, ...options });
	}
}

export { Meteor };
export default MeteorClient;
