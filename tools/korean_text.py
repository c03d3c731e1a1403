"""Korean sentences for a synthetic speech corpus: a template grammar.

The grammar covers the domain of the NSML Korean speech competitions: commands
to a car or an assistant (doors, windows, seats, climate, navigation, media,
phone calls, lights, alarms), questions (weather, time, the car, the route)
and free everyday sentences.

A sentence is drawn by expanding a start symbol: every ``<slot>`` in a
template is replaced by one of the slot's alternatives, chosen uniformly.
Particles that depend on the preceding syllable are written ``(을)를``,
``(이)가``, ``(은)는``, ``(과)와``, ``(이)랑``, ``(아)야`` and ``(으)로`` and
resolved after expansion. Numbers are written out in Hangul, as they are
spoken, so a label is exactly what the audio says.

Every sentence has two forms: what is spoken and what the label says. They are
the same except for masked personal data (2022 style, ``&name&``): the audio
says a plausible name while the label carries the mask, as in the real 2022
data. Masked slots are off unless asked for.

Held-out sentences: ``is_test_sentence`` splits sentences by a hash of their
label text, so the split does not depend on the seed or on the corpus size and
a test sentence can never be drawn for training.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------
# Numbers, spoken as Hangul words
# --------------------------------------------------------------------------
_SINO_DIGITS = ["", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"]
_NATIVE_UNITS = ["", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉"]
_NATIVE_TENS = ["", "열", "스물", "서른", "마흔", "쉰"]


def sino(n: int) -> str:
    """Sino-Korean reading of 0 <= n < 10000 (23 -> 이십삼, 100 -> 백)."""
    if n == 0:
        return "영"
    out = ""
    for value, unit in ((1000, "천"), (100, "백"), (10, "십"), (1, "")):
        d, n = divmod(n, value)
        if d:
            out += ("" if d == 1 and unit else _SINO_DIGITS[d]) + unit
    return out


def native(n: int) -> str:
    """Native Korean counting form before a counter, 1 <= n < 60 (3 -> 세)."""
    tens, units = divmod(n, 10)
    if n == 20:
        return "스무"
    return _NATIVE_TENS[tens] + _NATIVE_UNITS[units]


# --------------------------------------------------------------------------
# The grammar: slot name -> alternatives
# --------------------------------------------------------------------------
HOURS = [native(h) + " 시" for h in (7, 8, 6, 9, 10, 11, 12, 1, 2, 3, 4, 5)]
MINUTES = [sino(m) + " 분" for m in (5, 10, 15, 20, 25, 30, 40, 45, 50)]

GRAMMAR: dict[str, list[str]] = {
    # ---- start symbols -----------------------------------------------------
    "command": [
        "<door>", "<window>", "<seat>", "<climate>", "<nav>", "<media>",
        "<phone>", "<light>", "<car>", "<assistant>",
    ],
    "question": ["<weather_q>", "<route_q>", "<car_q>", "<info_q>"],
    "free": ["<free_past>", "<free_plan>", "<free_food>", "<free_state>",
             "<free_hobby>", "<free_drink>", "<free_weather>"],

    # ---- doors, windows, seats --------------------------------------------
    "door": [
        "<door_pos> 문 <adv> <open_close>",
        "<door_pos> 문(을)를 <adv> <open_close>",
        "트렁크 <adv> <open_close>",
        "<door_pos> 문 <lock>",
        "<door_pos> 문 잠겼는지 확인해 줘",
        "<door_pos> 문 열려 있는지 확인해 줘",
    ],
    "door_pos": ["운전석", "조수석", "뒷좌석", "왼쪽 뒷좌석", "오른쪽 뒷좌석",
                 "모든", "앞", "뒤", "차"],
    "adv": ["", "", "다시", "다시 한번", "좀", "빨리", "지금", "천천히"],
    "open_close": ["열어 줘", "닫아 줘", "열어 주세요", "닫아 주세요", "열어 줄래",
                   "닫아 줄래", "열어", "닫아", "열어 줄 수 있어", "닫아 줄 수 있어"],
    "lock": ["잠가 줘", "잠가 주세요", "잠금 해제해 줘", "잠금 풀어 줘", "잠가"],
    "window": [
        "<win_pos> 창문 <amount> <open_close>",
        "<win_pos> 창문 <amount> <up_down>",
        "선루프 <amount> <open_close>",
        "모든 창문 <open_close>",
        "환기 좀 시켜 줘",
        "<win_pos> 창문 <percent> 퍼센트만 열어 줘",
    ],
    "win_pos": ["운전석", "조수석", "뒷좌석", "왼쪽 뒷좌석", "오른쪽 뒷좌석",
                "운전석 쪽", "조수석 쪽", "앞", "뒤", ""],
    "amount": ["", "", "조금", "조금만", "반만", "끝까지", "살짝", "좀 더", "다"],
    "up_down": ["올려 줘", "내려 줘", "올려 주세요", "내려 주세요", "올려", "내려"],
    "percent": [sino(p) for p in (10, 20, 30, 40, 50, 60, 70, 80, 90)],
    "seat": [
        "<seat_pos> 열선 시트 <on_off>",
        "<seat_pos> 통풍 시트 <on_off>",
        "<seat_pos> 열선 시트 <level> 단계로 <set>",
        "<seat_pos> 통풍 시트 <level> 단계로 <set>",
        "<seat_pos> 시트 <seat_move>",
        "<seat_pos> 시트 마사지 <on_off>",
        "핸들 열선 <on_off>",
    ],
    "seat_pos": ["운전석", "조수석", "뒷좌석", "왼쪽 뒷좌석", "오른쪽 뒷좌석", ""],
    "seat_move": ["앞으로 당겨 줘", "뒤로 밀어 줘", "좀 더 젖혀 줘", "세워 줘",
                  "올려 줘", "내려 줘", "조금만 앞으로 해 줘", "원래대로 해 줘"],
    "on_off": ["켜 줘", "꺼 줘", "켜 주세요", "꺼 주세요", "켜", "꺼", "좀 켜 줄래",
               "좀 꺼 줄래", "켜 줄 수 있어", "꺼 줄 수 있어"],
    "level": [sino(n) for n in range(1, 6)],
    "set": ["맞춰 줘", "올려 줘", "내려 줘", "설정해 줘", "바꿔 줘", "맞춰 주세요",
            "조절해 줘"],

    # ---- climate -----------------------------------------------------------
    "climate": [
        "<climate_dev> <on_off>",
        "에어컨 온도 <temp>(으)로 <set>",
        "<zone> 온도 <temp>(으)로 <set>",
        "온도 <delta> <raise_lower>",
        "<zone> 온도 <delta> <raise_lower>",
        "바람 세기 <level> 단계로 <set>",
        "풍량 <level> 단계로 <set>",
        "바람 <wind>",
        "<air_mode> 모드로 바꿔 줘",
        "<air_mode> 모드 <on_off>",
        "<hot_cold>",
    ],
    "climate_dev": ["에어컨", "히터", "공기 청정기", "앞 유리 성에 제거",
                    "뒷유리 열선", "제습 기능", "자동 공조", "난방"],
    "temp": [sino(t) + " 도" for t in range(16, 31)],
    "zone": ["운전석", "조수석", "뒷좌석", "실내", "차 안"],
    "delta": ["좀", "조금", "조금만", "일 도", "이 도", "삼 도", "많이"],
    "raise_lower": ["올려 줘", "내려 줘", "높여 줘", "낮춰 줘", "올려", "내려"],
    "wind": ["좀 세게 해 줘", "약하게 해 줘", "세게 틀어 줘", "줄여 줘", "꺼 줘",
             "발 쪽으로 나오게 해 줘", "얼굴 쪽으로 보내 줘"],
    "air_mode": ["내기 순환", "외기 순환", "자동", "제습", "공기 청정", "절전",
                 "에코"],
    "hot_cold": ["너무 더워", "좀 추워", "너무 덥다", "좀 춥네", "차 안이 너무 더워",
                 "발이 좀 시려", "공기가 답답해"],

    # ---- navigation --------------------------------------------------------
    "nav": [
        "<dest>(으)로 <navigate>",
        "<dest>까지 <navigate>",
        "목적지 <dest>(으)로 <change>",
        "목적지(을)를 <dest>(으)로 <change>",
        "이동 경로 <route>(으)로 설정",
        "경로 <route>(으)로 <change>",
        "가장 가까운 <poi> <find>",
        "근처 <poi> <find>",
        "<dest> 근처 <poi> <find>",
        "경유지로 <poi> 추가해 줘",
        "경유지로 <dest> 추가해 줘",
        "<nav_misc>",
    ],
    "navigate": ["안내해 줘", "가 줘", "길 안내해 줘", "안내 시작해 줘", "가자",
                 "안내해 주세요", "가는 길 알려 줘"],
    "change": ["설정해 줘", "바꿔 줘", "변경해 줘", "설정", "변경", "바꿔 주세요"],
    "find": ["찾아 줘", "알려 줘", "검색해 줘", "안내해 줘", "찾아 주세요",
             "검색해 주세요"],
    "route": ["갓길", "고속도로 우선", "최단 거리", "최소 시간", "무료 도로",
              "추천 경로", "큰길 우선", "국도", "일반 도로"],
    "nav_misc": ["안내 종료", "안내 중지해 줘", "길 안내 그만해 줘", "경로 다시 검색해 줘",
                 "지도 확대해 줘", "지도 축소해 줘", "현재 위치 보여 줘",
                 "집으로 가자", "회사로 가자", "경유지 삭제해 줘", "음성 안내 꺼 줘"],
    "dest": ["서울역", "부산역", "대전역", "광주역", "동대구역", "수원역", "강남역",
             "홍대입구역", "잠실역", "여의도", "광화문", "인천공항", "김포공항",
             "제주공항", "해운대", "경복궁", "남산 타워", "코엑스", "판교역", "일산",
             "분당", "서울 시청", "부산 시청", "집", "회사", "학교", "서울대학교",
             "롯데월드", "에버랜드", "명동", "이태원", "신촌", "종로", "인사동", "강릉",
             "속초", "전주 한옥 마을", "경주", "춘천", "대구", "울산", "포항", "청주",
             "천안", "세종", "목포", "여수", "용산역", "서울숲", "올림픽 공원"],
    "poi": ["주유소", "전기차 충전소", "충전소", "주차장", "공영 주차장", "편의점",
            "카페", "커피숍", "식당", "맛집", "약국", "병원", "응급실", "은행",
            "현금 인출기", "휴게소", "세차장", "마트", "정비소", "화장실", "빵집",
            "꽃집", "서점", "경찰서", "우체국", "호텔", "공원", "대형 마트"],

    # ---- media -------------------------------------------------------------
    "media": [
        "<genre> <music> <play>",
        "<media_ctrl>",
        "볼륨 <volume>(으)로 <set>",
        "소리 <delta2> <louder>",
        "볼륨 <delta2> <louder>",
        "라디오 <on_off>",
        "에프엠 <freq> 틀어 줘",
        "<station> 틀어 줘",
        "블루투스 <connect>",
        "내 휴대폰 <connect>",
    ],
    "genre": ["신나는", "조용한", "잔잔한", "요즘 유행하는", "최신", "발라드", "재즈",
              "클래식", "댄스", "트로트", "힙합", "동요", "팝송", "케이팝",
              "드라이브할 때 듣기 좋은", "비 올 때 듣기 좋은", "옛날", "아이들이 좋아하는"],
    "music": ["노래", "음악", "곡"],
    "play": ["틀어 줘", "들려 줘", "재생해 줘", "틀어 줄래", "틀어 주세요", "좀 틀어 줘"],
    "media_ctrl": ["다음 곡", "이전 곡", "다음 노래 틀어 줘", "이전 곡으로 넘겨 줘",
                   "음악 멈춰 줘", "일시 정지", "다시 재생해 줘", "처음부터 다시 틀어 줘",
                   "음악 꺼 줘", "한 곡 반복해 줘", "랜덤 재생해 줘", "셔플 켜 줘",
                   "이 노래 저장해 줘", "다음 곡으로 넘겨 줘", "음소거 해 줘",
                   "음소거 풀어 줘"],
    "volume": [sino(v) for v in range(0, 31)],
    "delta2": ["좀", "조금", "조금만", "많이", "더", "살짝"],
    "louder": ["키워 줘", "줄여 줘", "높여 줘", "낮춰 줘", "키워", "줄여"],
    "freq": ["팔십구 점 일", "구십일 점 구", "구십삼 점 일", "구십오 점 일",
             "구십오 점 구", "구십칠 점 삼", "구십팔 점 일", "백일 점 구", "백삼 점 오",
             "백칠 점 칠"],
    "station": ["교통 방송", "뉴스 채널", "클래식 채널", "음악 방송", "라디오 뉴스"],
    "connect": ["연결해 줘", "연결 끊어 줘", "다시 연결해 줘", "연결해 주세요"],

    # ---- phone -------------------------------------------------------------
    "phone": [
        "<person>한테 전화 <call>",
        "<person>에게 전화 <call>",
        "<person>한테 문자 <send>",
        "<person>한테 <msg>(이)라고 문자 보내 줘",
        "<person>한테 <msg>(이)라고 보내 줘",
        "<person> 전화번호 찾아 줘",
        "<phone_misc>",
    ],
    "call": ["걸어 줘", "해 줘", "좀 걸어 줄래", "연결해 줘", "걸어 주세요", "해 주세요"],
    "send": ["보내 줘", "보내 줄래", "보내 주세요", "좀 보내 줘"],
    "msg": ["지금 가는 중", "조금 늦을 것 같아", "곧 도착해", "회의 끝나고 연락할게",
            "잘 도착했어", "이따 전화할게", "먼저 출발해", "길이 많이 막혀",
            "십 분 뒤에 도착", "지금 운전 중"],
    "phone_misc": ["최근 통화 목록 보여 줘", "부재중 전화 확인해 줘", "전화 끊어 줘",
                   "전화 받아 줘", "마지막으로 온 문자 읽어 줘", "문자 읽어 줘",
                   "방금 온 메시지 읽어 줘", "다시 걸어 줘"],
    "person": ["엄마", "아빠", "어머니", "아버지", "형", "누나", "언니", "오빠", "동생",
               "할머니", "할아버지", "아내", "남편", "팀장님", "부장님", "사장님",
               "과장님", "선생님", "친구", "김 대리", "박 과장", "이 부장", "최 팀장",
               "정 교수님", "삼촌", "이모", "고모", "아들", "딸", "사무실"],

    # ---- lights, car, assistant --------------------------------------------
    "light": [
        "<lamp> <on_off>",
        "와이퍼 <wiper>",
        "워셔액 뿌려 줘",
        "사이드 미러 <fold>",
        "<lamp> 밝기 <delta2> <brighter>",
    ],
    "lamp": ["실내등", "전조등", "안개등", "비상등", "상향등", "하향등", "무드등",
             "독서등", "트렁크 조명", "실내 조명"],
    "wiper": ["켜 줘", "꺼 줘", "빠르게 해 줘", "천천히 움직여 줘", "한 번만 움직여 줘",
              "자동으로 해 줘"],
    "fold": ["접어 줘", "펴 줘", "접어", "펴"],
    "brighter": ["밝게 해 줘", "어둡게 해 줘", "올려 줘", "내려 줘"],
    "car": [
        "주행 모드 <drive_mode>(으)로 <change>",
        "<car_feature> <on_off>",
        "화면 밝기 <delta2> <brighter>",
        "<car_misc>",
    ],
    "drive_mode": ["스포츠", "에코", "컴포트", "노멀", "스마트", "눈길"],
    "car_feature": ["크루즈 컨트롤", "차선 유지 보조", "후방 카메라", "전방 카메라",
                    "블랙박스", "오토 홀드", "주차 보조", "화면", "음성 안내",
                    "어라운드 뷰"],
    "car_misc": ["시동 꺼 줘", "블랙박스 녹화 시작해 줘", "계기판 밝기 올려 줘",
                 "주차 위치 저장해 줘", "차량 점검 시작해 줘", "트립 정보 초기화해 줘",
                 "전방 카메라 보여 줘", "후방 카메라 보여 줘"],
    "assistant": [
        "<day> <part_of_day> <clock>에 알람 맞춰 줘",
        "<day> <part_of_day> <clock>에 깨워 줘",
        "<minutes> 타이머 맞춰 줘",
        "<minutes> 뒤에 알려 줘",
        "알람 <cancel>",
        "<day> 일정 알려 줘",
        "<day> <clock>에 <event> 일정 추가해 줘",
        "<day> <event> 일정 <cancel>",
        "<memo>(이)라고 메모해 줘",
        "메모 읽어 줘",
    ],
    "day": ["오늘", "내일", "모레", "매일", "토요일", "일요일", "월요일", "금요일",
            "평일", "이번 주말"],
    "part_of_day": ["", "아침", "오전", "오후", "저녁", "밤", "새벽"],
    "clock": HOURS + [h + " " + m for h in HOURS[:4] for m in MINUTES]
    + [h + " 반" for h in HOURS[:5]],
    "minutes": [sino(m) + " 분" for m in (1, 2, 3, 5, 10, 15, 20, 30)],
    "cancel": ["꺼 줘", "취소해 줘", "삭제해 줘", "지워 줘", "취소"],
    "event": ["회의", "병원 예약", "저녁 약속", "미팅", "치과 예약", "운동", "점심 약속",
              "가족 모임", "출장", "면접"],
    "memo": ["우유 사기", "세탁물 찾기", "주차 위치 지하 이 층", "엄마 생신 선물",
             "택배 보내기", "보고서 제출", "약 먹기"],

    # ---- questions ---------------------------------------------------------
    "weather_q": [
        "<when> <city> 날씨 어때",
        "<when> <city>에 비 와",
        "<when> <city>에 눈 와",
        "<when> <city> 미세먼지 어때",
        "<when> <city> 기온 몇 도야",
        "<when> <city> 최저 기온 알려 줘",
        "<when> 날씨 어때",
        "<when> 우산 챙겨야 돼",
        "<when> 바람 많이 불어",
        "<city> 날씨 알려 줘",
    ],
    "when": ["오늘", "내일", "모레", "이번 주말", "주말에", "토요일", "일요일",
             "오늘 오후", "내일 아침", "다음 주", "지금", "오늘 밤"],
    "city": ["서울", "부산", "대구", "인천", "광주", "대전", "울산", "세종", "수원",
             "제주", "강릉", "춘천", "전주", "여수", "포항", "경주", "속초", "청주",
             "천안", "창원", "목포", "안동", "원주", "성남", "고양"],
    "route_q": [
        "<dest>까지 얼마나 걸려",
        "<dest>까지 몇 분 남았어",
        "<dest>까지 거리 얼마야",
        "<dest>까지 가는 길 막혀",
        "<dest> 가는 길에 <poi> 있어",
        "근처에 <poi> 있어",
        "가장 가까운 <poi> 어디야",
        "<poi>까지 얼마나 걸려",
        "도착 예정 시간 알려 줘",
        "지금 어디쯤이야",
    ],
    "car_q": ["기름 얼마나 남았어", "배터리 몇 퍼센트 남았어", "남은 주행 거리 알려 줘",
              "타이어 공기압 괜찮아", "엔진 오일 언제 갈아야 돼", "지금 실내 온도 몇 도야",
              "창문 다 닫혔어", "트렁크 열려 있어", "문 다 잠겼어", "연비 얼마야",
              "다음 정비 언제야", "충전 얼마나 남았어", "지금 몇 킬로로 달리고 있어",
              "경고등 왜 켜졌어"],
    "info_q": ["지금 몇 시야", "오늘 며칠이야", "오늘 무슨 요일이야", "<day> 일정 뭐 있어",
               "오늘 주요 뉴스 알려 줘", "환율 얼마야", "지금 나오는 노래 뭐야",
               "이 노래 제목 뭐야", "<day> <event> 몇 시야", "<city> 지금 몇 도야",
               "오늘 야구 경기 결과 알려 줘", "주식 시장 어때"],

    # ---- free everyday sentences ------------------------------------------
    "free_past": ["<past_when> <companion>(이)랑 <place>에 <went>",
                  "<past_when> <place>에 <went>"],
    "past_when": ["어제", "지난 주말에", "오늘 아침에", "작년 여름에", "지난달에",
                  "얼마 전에", "주말에", "휴가 때", "어제 저녁에"],
    "companion": ["친구", "가족", "동생", "엄마", "회사 동료", "남자 친구", "여자 친구",
                  "아이들", "부모님", "직장 동료들"],
    "place": ["바다", "산", "공원", "시장", "영화관", "도서관", "박물관", "캠핑장",
              "놀이공원", "백화점", "제주도", "부산", "강릉", "카페", "식당", "미술관",
              "동물원", "수영장"],
    "went": ["갔어요", "다녀왔어요", "놀러 갔어요", "갔다 왔어", "다녀왔는데 정말 좋았어요",
             "갔는데 사람이 너무 많았어요", "갔는데 너무 재밌었어"],
    "free_plan": ["<future_when> <companion>(이)랑 <place>에 <go_future>",
                  "<future_when> <place>에 <go_future>"],
    "future_when": ["내일", "이번 주말에", "다음 주에", "다음 달에", "내년에", "방학 때",
                    "휴가 때", "퇴근하고"],
    "go_future": ["갈 거예요", "가려고 해요", "가고 싶어요", "가 보고 싶어", "가기로 했어요",
                  "가 볼까 해요"],
    "free_food": ["<meal>(으)로 <food> <eat>",
                  "<food>(이)가 <taste>",
                  "<meal>에 <food> 먹을까"],
    "meal": ["점심", "저녁", "아침", "간식", "야식", "오늘 점심", "오늘 저녁"],
    "food": ["김치찌개", "된장찌개", "비빔밥", "불고기", "냉면", "떡볶이", "라면", "짜장면",
             "짬뽕", "삼겹살", "치킨", "피자", "김밥", "순두부찌개", "갈비탕", "칼국수",
             "초밥", "파스타", "샌드위치", "만두"],
    "eat": ["먹었어요", "먹을까", "먹고 싶어", "먹자", "먹을래요", "먹었는데 맛있었어"],
    "taste": ["정말 맛있었어요", "너무 매웠어", "생각보다 달아요", "좀 짰어요",
              "진짜 맛있다", "별로였어요", "너무 싱거워요"],
    "free_state": ["요즘 <topic> 때문에 <state>", "<topic> 때문에 <state>"],
    "topic": ["일", "시험", "이사", "프로젝트", "감기", "날씨", "공사", "육아", "야근",
              "회의"],
    "state": ["너무 바빠요", "정신이 없어요", "잠을 못 자요", "힘들어요", "피곤해요",
              "스트레스를 받아요", "걱정이에요", "쉬지를 못했어요"],
    "free_hobby": ["주말마다 <hobby>(을)를 해요", "요즘 <hobby>(을)를 배우고 있어요",
                   "<hobby>(을)를 좋아해요", "<hobby>(이)가 제 취미예요"],
    "hobby": ["등산", "수영", "요가", "테니스", "독서", "산책", "낚시", "자전거", "캠핑",
              "요리", "골프", "사진", "그림", "피아노", "축구", "배드민턴"],
    "free_drink": ["<drink> 한 잔 <drink_pred>", "<drink> 한 잔만 주세요"],
    "drink": ["커피", "녹차", "주스", "우유", "물", "라떼", "아메리카노", "코코아",
              "보리차", "홍차"],
    "drink_pred": ["마실래요", "마시고 싶어요", "주세요", "마셨어요", "할까요",
                   "하실래요"],
    "free_weather": ["날씨가 <weather_adj>", "오늘은 <weather_adj>", "밖에 <weather_adj>"],
    "weather_adj": ["좋네요", "정말 덥네요", "많이 추워졌어요", "흐리네요", "맑아요",
                    "바람이 많이 불어요", "비가 올 것 같아요", "눈이 오네요",
                    "쌀쌀하네요", "따뜻하네요"],
}

# Masked personal data (2022 style). The audio says the value, the label the
# mask. Only used with masked=True.
MASKED_GRAMMAR: dict[str, list[str]] = {
    "phone": ["<name>한테 전화 <call>", "<name>한테 문자 <send>",
              "<name>에게 전화 <call>", "<name>한테 <msg>(이)라고 보내 줘"],
    "nav": ["<company> <navigate>", "<company>까지 <navigate>"],
}
MASKS: dict[str, tuple[str, list[str]]] = {
    "name": ("&name&", ["김민수", "이서연", "박지훈", "최유진", "정하늘", "강동원",
                        "윤서아", "장민호", "한지민", "오세훈", "민지", "준호", "수빈"]),
    "company": ("&company-name&", ["한빛 전자", "대한 물산", "미래 건설", "푸른 식품",
                                   "세종 상사", "하나 로지스"]),
}

# Which start symbols make up each domain (the symbol is chosen uniformly).
DOMAINS: dict[str, list[str]] = {
    "all": ["command", "command", "question", "free"],
    "commands": ["command", "command", "question"],
    "free": ["free"],
}

# --------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------
_SLOT = re.compile(r"<([a-z_0-9]+)>")
_JOSA = {  # marker -> (after a final consonant, after a vowel)
    "(을)를": ("을", "를"), "(이)가": ("이", "가"), "(은)는": ("은", "는"),
    "(과)와": ("과", "와"), "(이)랑": ("이랑", "랑"), "(아)야": ("아", "야"),
    "(이)라고": ("이라고", "라고"), "(으)로": ("으로", "로"),
}
_JOSA_RE = re.compile("(.)(" + "|".join(re.escape(m) for m in _JOSA) + ")")


def _final_consonant(ch: str) -> int:
    """Index of the final consonant (받침) of a Hangul syllable, 0 if none."""
    code = ord(ch) - 0xAC00
    return code % 28 if 0 <= code < 11172 else 0


def resolve_particles(text: str) -> str:
    """'서울역(으)로' -> '서울역으로', '집(으)로' -> '집으로', '도(으)로' -> '도로'."""
    def pick(m: re.Match) -> str:
        prev, marker = m.group(1), m.group(2)
        jong = _final_consonant(prev)
        with_final, without = _JOSA[marker]
        if marker == "(으)로" and jong == 8:  # ㄹ final takes 로: 서울로
            return prev + without
        return prev + (with_final if jong else without)
    return _JOSA_RE.sub(pick, text)


def normalize_space(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Sentence:
    spoken: str     # text given to the synthesizer
    label: str      # transcription written in the label file
    kind: str       # start symbol: command, question or free

    @property
    def sentence_id(self) -> str:
        return sentence_id(self.label)


def sentence_id(label: str) -> str:
    """A stable id for a label text (same sentence -> same id in any corpus)."""
    return hashlib.sha1(label.encode("utf-8")).hexdigest()[:10]


def is_test_sentence(label: str, test_share: float) -> bool:
    """Held-out split by a hash of the label: the same in every corpus."""
    h = int(hashlib.sha1(("heldout:" + label).encode("utf-8")).hexdigest()[:8], 16)
    return (h % 10000) < round(test_share * 10000)


class SentenceGenerator:
    """Draws sentences from the grammar.

    domain: 'all', 'commands' (commands and questions) or 'free'.
    slot_limit: keep only the first N alternatives of every slot (0: all);
        a small value gives a small vocabulary with much repetition.
    masked: add templates with 2022-style masked personal data.
    spread: how an alternative is chosen: with weight (its number of
        expansions) ** spread. 0 picks alternatives uniformly (short fixed
        sentences come up often), 1 makes every sentence equally likely (the
        largest templates dominate); 0.5 is in between.
    """

    def __init__(self, domain: str = "all", slot_limit: int = 0, masked: bool = False,
                 spread: float = 0.5):
        if domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; choose from {sorted(DOMAINS)}")
        self.domain = domain
        self.starts = DOMAINS[domain]
        grammar = {k: list(v) for k, v in GRAMMAR.items()}
        if masked:
            for k, v in MASKED_GRAMMAR.items():
                grammar[k] = grammar[k] + v
        if slot_limit > 0:
            start_like = set(DOMAINS["all"]) | {"command", "question", "free"}
            grammar = {k: v if k in start_like else v[:slot_limit] for k, v in grammar.items()}
        self.grammar = grammar
        self.masks = MASKS if masked else {}
        self.weights = {}
        for sym, alts in grammar.items():
            w = np.array([float(self._count_template(t)) for t in alts]) ** spread
            self.weights[sym] = w / w.sum()

    # A sentence is expanded twice in lockstep: spoken and label differ only in
    # masked slots.
    def _expand(self, symbol: str, rng) -> tuple[str, str]:
        if symbol in self.masks:
            mask, values = self.masks[symbol]
            return values[rng.integers(len(values))], mask
        alts = self.grammar[symbol]
        template = alts[rng.choice(len(alts), p=self.weights[symbol])]
        spoken, label, pos = [], [], 0
        for m in _SLOT.finditer(template):
            spoken.append(template[pos:m.start()])
            label.append(template[pos:m.start()])
            s, l = self._expand(m.group(1), rng)
            spoken.append(s)
            label.append(l)
            pos = m.end()
        spoken.append(template[pos:])
        label.append(template[pos:])
        return "".join(spoken), "".join(label)

    def draw(self, rng) -> Sentence:
        kind = self.starts[rng.integers(len(self.starts))]
        spoken, label = self._expand(kind, rng)
        spoken = normalize_space(resolve_particles(spoken))
        label = normalize_space(resolve_particles(label))
        return Sentence(spoken=spoken, label=label, kind=kind)

    def draw_split(self, rng, test: bool, test_share: float, charset: set | None = None,
                   max_tries: int = 100000) -> Sentence:
        """A sentence from the held-out (test=True) or the training side;
        with `charset`, only one whose label uses no other characters."""
        for _ in range(max_tries):
            s = self.draw(rng)
            if is_test_sentence(s.label, test_share) == test and (
                    charset is None or set(s.label) <= charset):
                return s
        raise RuntimeError("could not draw a sentence for this split; is the grammar too "
                           "small for --test-sentence-share (or --test-known-chars)?")

    def count(self, symbol: str | None = None) -> int:
        """Number of expansions (an upper bound on distinct sentences)."""
        if symbol is None:
            return sum(self.count(s) for s in set(self.starts))
        if symbol in self.masks:
            return 1  # one label per mask
        return sum(self._count_template(t) for t in self.grammar[symbol])

    def _count_template(self, template: str) -> int:
        n = 1
        for m in _SLOT.finditer(template):
            n *= self.count(m.group(1))
        return n

    def enumerate(self, symbol: str | None = None, limit: int = 2_000_000):
        """All label texts (for small grammars; stops after `limit`)."""
        out: set[str] = set()

        def walk(sym):
            if sym in self.masks:
                yield self.masks[sym][0]
                return
            for template in self.grammar[sym]:
                parts = _SLOT.split(template)  # text, slot, text, slot, ...
                yield from _product(parts)

        def _product(parts):
            if len(parts) == 1:
                yield parts[0]
                return
            head, slot, rest = parts[0], parts[1], parts[2:]
            for x in walk(slot):
                for tail in _product(rest):
                    yield head + x + tail

        for s in ([symbol] if symbol else sorted(set(self.starts))):
            for text in walk(s):
                out.add(normalize_space(resolve_particles(text)))
                if len(out) >= limit:
                    return out
        return out
