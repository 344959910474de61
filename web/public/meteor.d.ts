// Type declarations for the Meteor browser client: the ES module
// (meteor.mjs, and its twin meteor.esm.js for servers that serve .mjs with
// the wrong type) and the global Meteor of the classic script (meteor.js).

/** A transport of the ladder, in the order tried by default. */
export type Transport = "websocket" | "sse" | "ndjson" | "poll" | "xhrinteractive";

/** A message as delivered. Ids grow per channel; each is delivered once. */
export interface Message {
	id: number;
	channel: string;
	text: string;
	/** Publication time, Unix milliseconds (WebSocket, NDJSON and long-poll; SSE and xhrinteractive do not send it). */
	time?: number;
	/** Extra arguments of a template's p() call (xhrinteractive only). */
	extra?: unknown[];
}

/**
 * Messages of a channel are gone before the client got them: trimmed from
 * history, or (reset) the whole stream the client stood in was lost, as
 * after a restart of a server that keeps history in memory.
 */
export interface Gap {
	channel: string;
	/** The last id the client had asked to resume after. */
	since: number;
	/** The newest id that the server no longer has (0 for a reset). */
	trimmed: number;
	/** True when the client's stream was lost: nothing can be said of what it missed there; it goes on with the new stream's messages. */
	reset: boolean;
	/** The stream the channel's messages now come from. */
	epoch?: string;
	transport: Transport;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "idle" | "closed";

export interface StatusEvent {
	state: ConnectionState;
	transport: Transport | null;
}

export interface ErrorEvent {
	transport: Transport | null;
	message: string;
	channel?: string;
	/**
	 * true: the client stopped and will not reconnect (an administrator closed a channel: WebSocket 4000 or channelClose; 1008, 1009;
	 * the server refused the token (401) or a channel (403); the token expired and there is no getToken).
	 */
	fatal?: boolean;
	/** The close code, the HTTP status of a refusal (401, 403), or "getToken" when getToken failed (the client tries again). */
	code?: number | string;
	/** A refusal: its HTTP status. */
	status?: 401 | 403;
	/** A refusal's reason from the server ("missing", "malformed", "signature", "audience", "channel", ...), or "tokenExpired". */
	reason?: string;
	/** A refusal's error text from the server. */
	error?: string;
}

export interface ClientOptions {
	/** The subscriber server, e.g. "https://push.example.com". Default: where the script came from. */
	url?: string;
	/** The ladder. Default ["websocket", "sse", "ndjson", "poll"]. */
	transports?: Transport[];
	/** ms of silence (no message, no heartbeat) after which a transport is given up. Default 35000; 0: never. */
	heartbeatTimeout?: number;
	/** ms a transport may take to open. Default 10000. */
	connectTimeout?: number;
	/** First retry delay in ms, doubled per failure. Default 1000. */
	retryDelay?: number;
	/** Longest retry delay in ms. Default 30000. */
	maxRetryDelay?: number;
	/** Seconds a long poll may wait on the server. Default 25. */
	pollTimeout?: number;
	/** SubscriberDynamicPageAddress, for the xhrinteractive transport. Default "/push". */
	pushpath?: string;
	/** A subscriber token (a JWT) for a server with SubscriberAuth 1. Without getToken it cannot be renewed: its expiry stops the client. */
	token?: string;
	/**
	 * Returns a fresh token. Called before connecting when there is no token or it is due for renewal, before the token
	 * expires (a tenth of its lifetime before exp, at least 30 s, at most half), and when the server says it expired.
	 * A failure (a throw, a rejection, an empty string) is reported as an error event with code "getToken" and tried again.
	 */
	getToken?: () => string | Promise<string>;
	/** SSE, NDJSON and long-poll send the token as Authorization: Bearer rather than ?token= (a cross-origin server must allow the header). Default false. */
	tokenHeader?: boolean;
}

export interface SubscribeOptions {
	/** The last id already seen: deliver what follows it. */
	since?: number;
	/** First the last N stored messages. */
	last?: number;
	/** "all": first every stored message. */
	history?: "all";
}

export interface ClientEvents {
	status: StatusEvent;
	gap: Gap;
	error: ErrorEvent;
	message: Message;
}

export interface SubscriptionEvents {
	message: Message;
	gap: Gap;
}

export declare class Subscription implements AsyncIterableIterator<Message> {
	readonly channel: string;
	/** The id of the last message delivered on the channel, null if none. */
	readonly lastId: number | null;
	readonly closed: boolean;
	on<K extends keyof SubscriptionEvents>(event: K, fn: (ev: SubscriptionEvents[K]) => void): () => void;
	off<K extends keyof SubscriptionEvents>(event: K, fn: (ev: SubscriptionEvents[K]) => void): void;
	/** Stops this subscription; the channel is left when it was the last one on it. */
	close(): void;
	next(): Promise<IteratorResult<Message, undefined>>;
	return(): Promise<IteratorResult<Message, undefined>>;
	[Symbol.asyncIterator](): this;
}

export declare class MeteorClient {
	constructor(options?: ClientOptions);
	readonly url: string;
	readonly status: ConnectionState;
	readonly transport: Transport | null;
	subscribe(channel: string, callback?: (msg: Message) => void): Subscription;
	subscribe(channel: string, options?: SubscribeOptions, callback?: (msg: Message) => void): Subscription;
	on<K extends keyof ClientEvents>(event: K, fn: (ev: ClientEvents[K]) => void): () => void;
	off<K extends keyof ClientEvents>(event: K, fn: (ev: ClientEvents[K]) => void): void;
	/** Ends the connection and every subscription. */
	close(): void;
}

/** The 1.06 status values of Meteor.status. */
export type MeteorStatus = 0 | 1 | 2 | 3 | 4 | 5 | 6;

export interface MeteorChannel {
	backtrack: number | null | undefined;
	lastmsgreceived: number;
}

export interface MeteorCallbacks {
	process: (text: string, channel: string, id: number, ...extra: unknown[]) => void;
	statuschanged: (status: MeteorStatus) => void;
	reset: () => void;
	eof: () => void;
	changemode: (from: "poll", to: "smartpoll") => void;
	gap: (channel: string, since: number, trimmed: number) => void;
}

/** The global Meteor of meteor.js: the 1.06 interface, with extensions. */
export interface MeteorStatic {
	readonly client: "meteor-go";
	readonly version: string;
	host: string | null;
	port: number;
	scheme: "http" | "https";
	hostid: string | null;
	/** "stream" (the transport ladder), "longpoll", "smartpoll", "simplepoll", "xhrinteractive", "iframe". */
	mode: string;
	/** Mode "stream": the ladder. Default websocket, sse, ndjson, poll, xhrinteractive. */
	transports: Transport[];
	pollfreq: number;
	minpollfreq: number;
	maxpollfreq: number;
	polltimeout: number;
	/** ms of silence after which a stream is given up (mode "stream": the next transport). */
	pingtimeout: number;
	pushpath: string;
	/** A subscriber token (a JWT, SubscriberAuth 1), sent with every subscription as ?token=; set a fresh one before it expires. */
	token: string | null;
	/** Mode "stream": returns a fresh token before the current one expires (default: the current Meteor.token). */
	getToken: (() => string | Promise<string>) | null;
	debugmode: boolean;
	readonly status: MeteorStatus;
	/** The transport in use: a Transport in mode "stream", else the mode's name. */
	readonly transport: string | null;
	readonly channels: Record<string, MeteorChannel>;
	readonly channelcount: number;
	callbacks: MeteorCallbacks;
	joinChannel(name: string, backtrack?: number | null): void;
	leaveChannel(name: string): void;
	registerEventCallback<K extends keyof MeteorCallbacks>(event: K, fn: MeteorCallbacks[K]): void;
	connect(): void;
	disconnect(): void;
	/** The calls in a response body of the script modes, as [name, ...args]. */
	parse(body: string | string[]): unknown[][];
	getSubsUrl(kind?: string): string;
	/** The modern client class. */
	Client: typeof MeteorClient;
	// 1.06 entry points used by the helper pages.
	register(win: Window): void;
	reset(win?: unknown): void;
	process(id: number, channel: string, text: string, ...extra: unknown[]): void;
	channelInfo(name: string, lastId: number): void;
	eof(): void;
	ping(): void;
	setstatus(status: MeteorStatus): void;
	log(text: string): void;
	frame(kind: "stream" | "poll"): void;
}

export declare const Meteor: MeteorStatic;
export default MeteorClient;

declare global {
	/** The classic client, defined by <script src="/meteor.js">. */
	var Meteor: MeteorStatic;
}
