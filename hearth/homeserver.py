"""The homeserver's parts, built once in dependency order.

`Homeserver.start(config)` is the composition root for everything that is not
HTTP: database, stores, then services, each receiving what it needs in its
constructor. The HTTP apps (`hearth.app.build_app`) are built on top of it, one
per listener, all sharing the same services.
"""

from __future__ import annotations

from dataclasses import dataclass

from signedjson.types import SigningKey

from hearth.clock import Clock, IdGenerator, SystemClock
from hearth.config import HearthConfig
from hearth.metrics import Metrics
from hearth.notifier import Notifier
from hearth.push.pusher import PusherService
from hearth.push.rules_service import PushRulesService
from hearth.push.service import PushService
from hearth.ratelimit import Ratelimiters
from hearth.rooms.aliases import AliasService, CanonicalAliasCheck
from hearth.rooms.builder import EventBuilder
from hearth.rooms.create import RoomCreator
from hearth.rooms.directory import RoomDirectory
from hearth.rooms.membership import MembershipService
from hearth.rooms.persist import EventPersister
from hearth.rooms.reading import RoomReader
from hearth.rooms.receipts import ReceiptsService
from hearth.rooms.redact import Redactor
from hearth.rooms.relations import RelationRules, RelationsService
from hearth.rooms.report import ReportService
from hearth.rooms.search import SearchService
from hearth.rooms.send import RoomSender
from hearth.rooms.serialize import EventSerializer
from hearth.rooms.summary import RoomSummaries, SpaceHierarchy, StateReader
from hearth.rooms.typing import TypingService
from hearth.rooms.upgrade import RoomUpgrader
from hearth.rooms.visibility import HistoryVisibility
from hearth.signing_key import load_signing_key
from hearth.storage.account_data import AccountDataStore
from hearth.storage.aliases import AliasesStore
from hearth.storage.db import Database
from hearth.storage.devices import DevicesStore
from hearth.storage.directory import DirectoryStore
from hearth.storage.events import EventsStore
from hearth.storage.filters import FiltersStore
from hearth.storage.positions import PositionTracker
from hearth.storage.presence import PresenceStore
from hearth.storage.push import PushStore
from hearth.storage.receipts import ReceiptsStore
from hearth.storage.registration_tokens import RegistrationTokensStore
from hearth.storage.relations import RelationsStore
from hearth.storage.reports import ReportsStore
from hearth.storage.rooms import RoomsStore
from hearth.storage.search import SearchStore
from hearth.storage.state import StateStore
from hearth.storage.streams import StreamPositions
from hearth.storage.sync import SyncStore
from hearth.storage.timeline import TimelineStore
from hearth.storage.to_device import ToDeviceStore
from hearth.storage.uia import UIASessionsStore
from hearth.storage.user_directory import UserDirectoryStore
from hearth.storage.users import UsersStore
from hearth.sync.service import SyncService
from hearth.sync.streams.presence import PresenceStream
from hearth.sync.streams.receipts import ReceiptsStream
from hearth.sync.streams.to_device import ToDeviceStream
from hearth.sync.streams.typing import TypingStream
from hearth.users.account_data import AccountDataService
from hearth.users.accounts import AccountService
from hearth.users.deactivation import DeactivationService
from hearth.users.devices import DeviceService
from hearth.users.directory import UserDirectory
from hearth.users.filters import FilterService
from hearth.users.login import LoginService
from hearth.users.password_change import PasswordChangeService
from hearth.users.passwords import PasswordHasher
from hearth.users.presence import PresenceService
from hearth.users.profile import ProfileService
from hearth.users.registration import RegistrationService, SharedSecretRegistration
from hearth.users.sessions import SessionService
from hearth.users.tags import TagsService
from hearth.users.to_device import ToDeviceService
from hearth.users.uia import UIAService


@dataclass
class Homeserver:
    config: HearthConfig
    db: Database
    clock: Clock
    ids: IdGenerator
    metrics: Metrics
    signing_key: SigningKey
    ratelimiters: Ratelimiters
    passwords: PasswordHasher
    users: UsersStore
    devices: DevicesStore
    sessions: SessionService
    accounts: AccountService
    registration_tokens: RegistrationTokensStore
    login: LoginService
    uia: UIAService
    registration: RegistrationService
    shared_secret_registration: SharedSecretRegistration
    device_manager: DeviceService
    profiles: ProfileService
    account_data: AccountDataService
    filters: FilterService
    password_changes: PasswordChangeService
    deactivation: DeactivationService
    notifier: Notifier
    room_store: RoomsStore
    event_store: EventsStore
    state_store: StateStore
    event_positions: PositionTracker
    persister: EventPersister
    event_builder: EventBuilder
    room_sender: RoomSender
    room_creator: RoomCreator
    membership: MembershipService
    timeline_store: TimelineStore
    visibility: HistoryVisibility
    event_serializer: EventSerializer
    room_reader: RoomReader
    relations: RelationsService
    search: SearchService
    user_directory: UserDirectory
    tags: TagsService
    sync: SyncService
    redactor: Redactor
    reports: ReportService
    aliases: AliasService
    room_directory: RoomDirectory
    room_summaries: RoomSummaries
    space_hierarchy: SpaceHierarchy
    room_upgrader: RoomUpgrader
    push_rules: PushRulesService
    pushers: PusherService
    push: PushService
    receipts: ReceiptsService
    typing: TypingService
    presence: PresenceService
    to_device: ToDeviceService

    @classmethod
    async def start(cls, config: HearthConfig, *, clock: Clock | None = None) -> Homeserver:
        clock = clock or SystemClock()
        ids = IdGenerator()
        db = Database.from_url(config.database.url, pool_size=config.database.pool_size)
        devices = DevicesStore(db)
        users = UsersStore(db)
        passwords = PasswordHasher(config.argon2)
        ratelimiters = Ratelimiters(config.rate_limits, clock)
        sessions = SessionService(
            db=db, devices=devices, clock=clock, ids=ids,
            refreshable_lifetime_ms=config.refreshable_access_token_lifetime_ms,
        )
        registration_tokens = RegistrationTokensStore(db)
        login = LoginService(server_name=config.server_name, users=users, passwords=passwords,
                             sessions=sessions, ratelimiters=ratelimiters)
        accounts = AccountService(
            server_name=config.server_name, users=users, passwords=passwords, clock=clock,
            reserved_usernames=config.reserved_usernames,
        )
        uia = UIAService(
            db=db, sessions=UIASessionsStore(), tokens=registration_tokens, passwords=login,
            clock=clock, ids=ids, timeout_ms=config.uia_session_timeout_ms,
        )
        stream_positions = await StreamPositions.load(db)
        account_data = AccountDataStore(db, stream_positions)
        filters = FiltersStore(db)
        signing_key = load_signing_key(config.signing_key_path)
        notifier = Notifier()
        room_store, event_store, state_store = RoomsStore(db), EventsStore(), StateStore(db)
        async with db.read() as conn:
            event_positions = PositionTracker(await event_store.max_stream_ordering(conn))
        persister = EventPersister(db=db, rooms=room_store, events=event_store, state=state_store,
                                   positions=event_positions, notifier=notifier)
        event_builder = EventBuilder(db=db, events=event_store, persister=persister,
                                     server_name=config.server_name, signing_key=signing_key, clock=clock)
        alias_store, directory_store = AliasesStore(db), DirectoryStore()
        relations_store = RelationsStore()
        room_sender = RoomSender(
            rooms=room_store, builder=event_builder, persister=persister,
            state_checks={"m.room.canonical_alias": CanonicalAliasCheck(aliases=alias_store,
                                                                       server_name=config.server_name)},
            relation_check=RelationRules(db=db, rooms=room_store, relations=relations_store),
        )
        state_reader = StateReader(db=db, state=state_store, events=event_store, directory=directory_store)
        room_summaries = RoomSummaries(db=db, reader=state_reader, directory=directory_store,
                                       notifier=notifier)
        aliases = AliasService(db=db, aliases=alias_store, rooms=room_store, directory=directory_store,
                               reader=state_reader, users=users, persister=persister, sender=room_sender,
                               server_name=config.server_name, clock=clock)
        room_creator = RoomCreator(db=db, rooms=room_store, users=users, builder=event_builder,
                                   persister=persister, sender=room_sender, server_name=config.server_name,
                                   clock=clock, aliases=aliases)
        membership = MembershipService(db=db, aliases=aliases, rooms=room_store, users=users,
                                       persister=persister, sender=room_sender,
                                       server_name=config.server_name)
        timeline = TimelineStore()
        visibility = HistoryVisibility(events=event_store, state=state_store, timeline=timeline)
        serializer = EventSerializer(events=event_store, state=state_store, timeline=timeline, clock=clock)
        relations = RelationsService(db=db, rooms=room_store, events=event_store, relations=relations_store,
                                     timeline=timeline, visibility=visibility, serializer=serializer,
                                     account_data=account_data, clock=clock)
        serializer.add_unsigned_hook(relations.unsigned)
        account_data_service = AccountDataService(store=account_data, notifier=notifier)
        room_reader = RoomReader(db=db, rooms=room_store, events=event_store, state=state_store,
                                 timeline=timeline, visibility=visibility, serializer=serializer,
                                 account_data=account_data)
        sync = SyncService(db=db, store=SyncStore(), rooms=room_store, events=event_store, state=state_store,
                           account_data=account_data, visibility=visibility, serializer=serializer,
                           positions=event_positions, persister=persister, notifier=notifier, clock=clock)
        push_store = PushStore()
        push_rules = PushRulesService(db=db, store=push_store, account_data=account_data, notifier=notifier)
        pushers = PusherService(db=db, store=push_store, config=config.push, clock=clock)
        push = PushService(db=db, store=push_store, events=event_store, rooms=room_store, state=state_store,
                           rules=push_rules, pushers=pushers, positions=event_positions, persister=persister,
                           clock=clock, server_name=config.server_name)
        sync.add_response_hook(push.sync_hook)
        receipts_store, presence_store = ReceiptsStore(stream_positions), PresenceStore(stream_positions)
        receipts = ReceiptsService(db=db, rooms=room_store, events=event_store, store=receipts_store,
                                   account_data=account_data, notifier=notifier, clock=clock)
        receipts.add_read_listener(push.mark_read)
        typing = TypingService(rooms=room_store, notifier=notifier, clock=clock)
        presence = PresenceService(db=db, store=presence_store, users=users, notifier=notifier, clock=clock,
                                   config=config.presence, server_name=config.server_name)
        persister.add_persisted_listener(lambda stored, _: presence.note_activity(stored.event.sender))
        sync.add_stream(ReceiptsStream(db=db, store=receipts_store))
        sync.add_stream(TypingStream(typing=typing))
        sync.add_stream(PresenceStream(db=db, store=presence_store, presence=presence))
        to_device_store = ToDeviceStore(stream_positions)
        sync.add_stream(ToDeviceStream(db=db, store=to_device_store))
        return cls(
            config=config,
            db=db,
            clock=clock,
            ids=ids,
            metrics=Metrics(),
            signing_key=signing_key,
            ratelimiters=ratelimiters,
            passwords=passwords,
            users=users,
            devices=devices,
            sessions=sessions,
            accounts=accounts,
            registration_tokens=registration_tokens,
            login=login,
            uia=uia,
            registration=RegistrationService(
                enabled=config.enable_registration, requires_token=config.registration_requires_token,
                accounts=accounts, sessions=sessions, uia=uia, tokens=registration_tokens,
                ratelimiters=ratelimiters, ids=ids, clock=clock,
            ),
            shared_secret_registration=SharedSecretRegistration(
                secret=config.registration_shared_secret, accounts=accounts, sessions=sessions,
                ids=ids, clock=clock,
            ),
            device_manager=DeviceService(devices=devices, sessions=sessions, clock=clock),
            profiles=ProfileService(server_name=config.server_name, users=users, rooms=membership),
            account_data=account_data_service,
            filters=FilterService(store=filters),
            password_changes=PasswordChangeService(users=users, passwords=passwords, sessions=sessions),
            deactivation=DeactivationService(db=db, users=users, account_data=account_data,
                                             filters=filters, sessions=sessions, rooms=membership,
                                             pushers=pushers),
            notifier=notifier,
            room_store=room_store,
            event_store=event_store,
            state_store=state_store,
            event_positions=event_positions,
            persister=persister,
            event_builder=event_builder,
            room_sender=room_sender,
            room_creator=room_creator,
            membership=membership,
            timeline_store=timeline,
            visibility=visibility,
            event_serializer=serializer,
            room_reader=room_reader,
            relations=relations,
            search=SearchService(db=db, store=SearchStore(), events=event_store, state=state_store,
                                 timeline=timeline, visibility=visibility, serializer=serializer,
                                 account_data=account_data, clock=clock),
            user_directory=UserDirectory(db=db, store=UserDirectoryStore(),
                                         search_all_users=config.user_directory_search_all_users),
            tags=TagsService(account_data=account_data_service, store=account_data),
            redactor=Redactor(db=db, events=event_store, state=state_store, users=users,
                              persister=persister, sender=room_sender, server_name=config.server_name),
            reports=ReportService(db=db, rooms=room_store, users=users, reader=room_reader,
                                  visibility=visibility, store=ReportsStore(db),
                                  server_name=config.server_name, clock=clock),
            aliases=aliases,
            room_directory=RoomDirectory(db=db, rooms=room_store, directory=directory_store,
                                         summaries=room_summaries, reader=state_reader, users=users),
            room_summaries=room_summaries,
            space_hierarchy=SpaceHierarchy(db=db, summaries=room_summaries, reader=state_reader,
                                           directory=directory_store, clock=clock),
            room_upgrader=RoomUpgrader(db=db, rooms=room_store, directory=directory_store,
                                       reader=state_reader, aliases=alias_store, creator=room_creator,
                                       sender=room_sender, server_name=config.server_name),
            sync=sync,
            push_rules=push_rules,
            pushers=pushers,
            push=push,
            receipts=receipts,
            typing=typing,
            presence=presence,
            to_device=ToDeviceService(db=db, store=to_device_store, notifier=notifier, clock=clock,
                                      server_name=config.server_name),
        )

    async def close(self) -> None:
        self.typing.close()
        await self.presence.close()
        await self.passwords.close()
        await self.db.close()
